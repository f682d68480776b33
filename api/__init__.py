"""The GraphQL API of PyTorch-workflow: strawberry schema, resolvers and the starlette app factory.

The app factory is ``api.app.create_app``; the schema is ``api.schema.schema``."""
