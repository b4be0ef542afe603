"""The web view: static pages over the query API, served by the gateway at ``/ui/``."""
