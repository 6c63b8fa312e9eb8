"""Gateways to other systems: iCalendar feed and exclusion calendars, crontab, Kubernetes."""

from apflow.gateway.crontab import export_crontab
from apflow.gateway.exclusion_cache import ExclusionCache
from apflow.gateway.ical_export import export_calendar
from apflow.gateway.ical_import import ExclusionCalendar, parse_exclusions
from apflow.gateway.k8s import kubernetes_cronjob

__all__ = [
    "ExclusionCache",
    "ExclusionCalendar",
    "export_calendar",
    "export_crontab",
    "kubernetes_cronjob",
    "parse_exclusions",
]
