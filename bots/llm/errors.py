"""Provider failures, translated from vendor errors into our DomainError family."""

from django.utils.translation import gettext as _

from core.errors import DomainError


class ProviderError(DomainError):
    """The model provider failed; 502 unless a subclass says otherwise."""

    status_code = 502
    code = "provider_error"
    # Before the first token another config may answer instead (chats/streaming.py): an outage, a
    # rate limit, a time-out, a refused key or an unknown model are this provider's; see ProviderRefused.
    retry_elsewhere = True

    def default_message(self) -> str:
        return _("The model provider failed.")


class UnknownProvider(DomainError):
    status_code = 400
    code = "unknown_provider"


class ProviderRefused(ProviderError):
    """The provider refused the request itself (a 400 or 422 about its content): another would too."""

    code = "provider_refused"
    retry_elsewhere = False


class ProviderNotConfigured(ProviderError):
    status_code = 503
    code = "provider_not_configured"


class ProviderUnavailable(ProviderError):
    status_code = 503
    code = "provider_unavailable"


class ProviderTimeout(ProviderError):
    status_code = 504
    code = "provider_timeout"


class StreamInterrupted(ProviderError):
    code = "stream_interrupted"
