"""Authentication, authorization, configuration errors, health and observability of the service."""
