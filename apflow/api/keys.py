"""Typed application state (aiohttp AppKeys) shared by the routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from apflow.clock import Clock
from apflow.config import Config
from apflow.metrics import Metrics
from apflow.service import Service
from apflow.store.base import Store

if TYPE_CHECKING:  # the engine is imported only by an app that runs one
    from apflow.engine.engine import Engine

CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", Store)
CLOCK = web.AppKey("clock", Clock)
SERVICE = web.AppKey("service", Service)
ENGINE: web.AppKey[Engine | None] = web.AppKey("engine")
METRICS = web.AppKey("metrics", Metrics)
