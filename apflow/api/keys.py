"""Typed application state (aiohttp AppKeys) shared by the routes."""

from __future__ import annotations

from aiohttp import web

from apflow.clock import Clock
from apflow.config import Config
from apflow.store.base import Store

CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", Store)
CLOCK = web.AppKey("clock", Clock)
