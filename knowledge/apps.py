from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.metrics import on_scrape
        from knowledge import signals  # noqa: F401
        from knowledge.metrics import ingestion_metrics

        on_scrape(ingestion_metrics)
