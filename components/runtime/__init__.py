"""What every step and entry point shares at run time: Keras 2 (tf_keras) before TensorFlow loads (keras2.py), an exit
that skips TensorFlow's slow teardown but runs the exit handlers (quiet_exit.py), progress lines for long loops
(progress.py), and where things are kept: object stores' file systems (object_store.py) and folders of versions
published whole (versioned_folders.py).

Imports only the standard library and TensorFlow; every other package may import it."""
