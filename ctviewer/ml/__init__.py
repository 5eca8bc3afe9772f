"""Deep-learning models for every workflow: Keras 3 architectures, model cards, the model registry,
the training loop and the table of training tasks.

Importing this package is light: Keras and TensorFlow are imported only inside the functions that
need them (through :func:`ctviewer.ml.backend.keras`), so the CLI and the GUI start fast.

    backend   the keras module (TensorFlow by default, GPU memory growth on), device, out-of-memory check
    cards     ModelCard: the JSON description saved beside each NAME.keras
    registry  shipped and user models: list, find, load (safe_mode), save
    datasets  splitting samples into training and validation by study
    training  TrainConfig, the training loop (fit) with reports, cancel, checkpoint, early stopping
    tasks     the training tasks (name -> module) and run_training, the one entry point for CLI and GUI
"""
