"""HealthTrack's PostgreSQL database backend (``ENGINE = "healthtrack.postgresql"``)."""
