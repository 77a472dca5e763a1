"""``python -m archc.cli``, as before the command line became a package (``python -m archc`` is the same)."""

from archc.cli import main

main()
