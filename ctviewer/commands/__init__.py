"""Headless verbs of the ``ctviewer`` command that have a module of their own (see ``cli.VERB_MODULES``)."""
