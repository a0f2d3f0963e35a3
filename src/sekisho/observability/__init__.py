"""What operators watch: readiness, Prometheus metrics, and JSON logs."""
