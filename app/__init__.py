"""ctviewer's Qt GUI. It calls the core (``ctviewer``); the core never calls it."""
