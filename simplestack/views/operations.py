"""Endpoints for operators: /healthz, /metrics and the /docs page.

None of them reaches a hypervisor or needs a hypervisor token.
"""

import colander
from cornice import Service
from swagger_ui_bundle import swagger_ui_path

from simplestack.views import describe

DOCS_STATIC_PATH = "docs/static"

# The page and its script refer to everything by relative URLs, so the page
# also works below a path prefix that a proxy adds.
DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Simplestack API</title>
<link rel="stylesheet" href="{static}/swagger-ui.css">
<link rel="icon" type="image/png" href="{static}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
""".format(static=DOCS_STATIC_PATH)

# validatorUrl: null, because Swagger UI otherwise loads a badge from
# validator.swagger.io, and the page must load nothing from the internet.
DOCS_SCRIPT = """window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true
});
"""

# The browser enforces what the comment above promises: only this origin.
# Swagger UI sets inline styles, and shows images as data: URLs.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self'")

HEALTHZ_DESCRIPTION = (
    "Whether this service process responds; no hypervisor call")

healthz = Service(name="healthz", path="/healthz",
                  description=HEALTHZ_DESCRIPTION)


@healthz.get()
def get_healthz(request):
    return {"status": "ok"}


describe(healthz, "GET", 200,
         lambda: colander.SchemaNode(colander.Mapping(), title="Health"),
         HEALTHZ_DESCRIPTION)

metrics = Service(
    name="metrics", path="/metrics",
    description="Prometheus metrics of requests and hypervisor calls")


@metrics.get()
def get_metrics(request):
    body, content_type = request.registry.simplestack_metrics.render()
    response = request.response
    response.body = body
    response.headers["Content-Type"] = content_type
    return response


def docs_page(request):
    response = request.response
    response.content_type = "text/html"
    response.text = DOCS_PAGE
    response.headers["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
    return response


def docs_script(request):
    response = request.response
    response.content_type = "text/javascript"
    response.text = DOCS_SCRIPT
    return response


def includeme(config):
    """Add the /docs page, its script and Swagger UI's files.

    The files come from the swagger-ui-bundle package's directory, so the
    installed package is the only copy.
    """
    config.add_route("docs", "/docs")
    config.add_view(docs_page, route_name="docs", request_method="GET")
    config.add_route("docs_script", "/docs/init.js")
    config.add_view(docs_script, route_name="docs_script",
                    request_method="GET")
    # request_method is a route predicate here, so other methods never get
    # the file: traversal takes them, as it does for /docs.
    config.add_static_view(DOCS_STATIC_PATH, str(swagger_ui_path),
                           cache_max_age=3600,
                           request_method=("GET", "HEAD"))
