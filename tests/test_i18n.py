"""User-facing text follows Accept-Language (English and Spanish)."""

import pytest


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "Bot not found."), ("es", "Bot no encontrado."), ("es-ES,es;q=0.9", "Bot no encontrado.")],
)
def test_errors_are_translated(api, language, expected):
    response = api.get("/bots/00000000-0000-0000-0000-000000000000", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 404
    assert response.json()["detail"] == expected


# Transactional: the async chat view reads the database from another thread, which must see the bot.
@pytest.mark.django_db(transaction=True)
def test_provider_errors_are_translated_in_spanish(api, settings):
    providers = {name: dict(config) for name, config in settings.LLM_PROVIDERS.items()}
    providers["google"]["api_key"] = ""
    settings.LLM_PROVIDERS = providers
    bot = api.post(
        "/bots/",
        {"name": "b", "initial_configs": [{"provider": "google", "model_id": "gemini-1.5-flash-latest"}]},
        format="json",
    ).json()
    response = api.post(f"/chat/{bot['id']}?query=hola", HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("El proveedor de modelos google no está configurado")
