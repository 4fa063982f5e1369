"""The catalogue's web page for shoppers and operators: server-rendered HTML, assets served locally."""

from catalogue.web.pages import build_web

__all__ = ["build_web"]
