"""Framework integrations of the tracking client, each an optional extra of the package:
``pip install 'pytorch-workflow[lightning]'`` (``ptw.integrations.lightning.PtwLogger``) and
``pip install 'pytorch-workflow[transformers]'`` (``ptw.integrations.transformers.PtwCallback``)."""
