"""deploystream's query API (``/rest/deploystream/1/``): questions Jira's API cannot answer,
read from the workers' indexes, and a live change stream."""
