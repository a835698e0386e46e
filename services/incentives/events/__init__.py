"""Events the service publishes and consumes."""
