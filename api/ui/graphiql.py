"""GraphiQL's page, loading GraphiQL and React from this package instead of the CDN strawberry's page uses."""

from __future__ import annotations

from ptw.api.ui.routes import page


def graphiql_page() -> str:
    """GraphiQL's HTML for ``/graphql``; its script pre-fills the Authorization header with the tab's key."""
    return page("graphiql.html")
