"""Serializer base that refuses fields it does not declare (mass assignment, docs/reliability.md B5)."""

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import serializers

from core.api.exception_handler import flatten_validation_errors
from core.errors import DomainError


class StrictSerializer(serializers.Serializer):
    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "keys"):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data.keys()) - writable)
            if unknown:
                raise serializers.ValidationError({name: [_("Unknown or read-only field.")] for name in unknown})
        return super().to_internal_value(data)


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """The serializer's validated data, or a DomainError whose detail names each bad field."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise DomainError("; ".join(flatten_validation_errors(serializer.errors)), code="invalid")
    return serializer.validated_data
