"""Simplestack: a stateless REST service in front of many hypervisors."""

import logging

from pyramid.config import Configurator
from pyramid.interfaces import IRoutesMapper

from simplestack.metrics import configure_metrics
from simplestack.resources import root_factory
from simplestack.routing import SlashCountRoutesMapper
from simplestack.responses import response_factory, set_request_class
from simplestack.settings import parse_settings
from simplestack.streams import StreamSlots
from simplestack.tweens import run_cornice_subscriber_in_tween

logger = logging.getLogger(__name__)


def main(global_config, **raw_settings):
    """Build the WSGI application from INI settings (PasteDeploy entry)."""
    settings = parse_settings(raw_settings)

    with Configurator(settings=settings) as config:
        # Before any route: Pyramid creates its own mapper on the first.
        config.registry.registerUtility(SlashCountRoutesMapper(),
                                        IRoutesMapper)
        config.include("cornice")
        config.set_response_factory(response_factory)
        # URLs that match no service still traverse the tree, so a 404 can
        # name the part of the path that is unknown.
        config.set_root_factory(root_factory)
        config.add_tween("simplestack.tweens.request_summary_tween_factory")
        # Before the scan: the services' "/{hypervisor}/{host}" route would
        # otherwise match "/docs/init.js" first.
        config.include("simplestack.views.operations")
        config.scan("simplestack.views")
        config.registry.simplestack_metrics = configure_metrics(settings)
        config.registry.simplestack_stream_slots = StreamSlots(
            settings["simplestack.max_concurrent_streams"])
        set_request_class(config)
        run_cornice_subscriber_in_tween(config.registry)
        app = config.make_wsgi_app()

    logger.info("Simplestack started with hypervisor types: %s",
                ", ".join(sorted(settings["simplestack.hypervisor_types"]))
                or "none")
    return app
