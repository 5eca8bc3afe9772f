"""Thin sections: photos and label images, projects, the live classifier, prediction, fractions and metrics."""
