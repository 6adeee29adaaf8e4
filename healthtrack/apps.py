from django.apps import AppConfig


class HealthtrackConfig(AppConfig):
    name = "healthtrack"
    verbose_name = "HealthTrack"

    def ready(self) -> None:
        from healthtrack import checks  # noqa: F401  (registers system checks)
