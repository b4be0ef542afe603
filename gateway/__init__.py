"""HTTP gateway: the Jira Deployments API in front of Kafka."""
