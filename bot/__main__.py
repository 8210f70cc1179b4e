"""`python -m bot` (the Procfile's web process, DESIGN.md): runs pgconn.main, which sits above
the core. Nothing in bot/ imports this module."""

from pgconn.main import main

if __name__ == "__main__":
    main()
