"""The use cases of apflow: the one place the API and the CLI both call."""

from apflow.service.principal import Principal
from apflow.service.service import METHOD_NAMES, METHODS, Service

__all__ = ["METHODS", "METHOD_NAMES", "Principal", "Service"]
