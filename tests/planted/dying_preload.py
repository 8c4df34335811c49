"""A framework module that kills the process importing it (what a broken native library can do): declared as a
``preload=``, it takes down the fork server that starts the workers."""

import os

os._exit(7)
