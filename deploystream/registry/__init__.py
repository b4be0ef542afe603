"""Run a real schema registry (Apicurio Registry from Maven Central) beside the broker."""
