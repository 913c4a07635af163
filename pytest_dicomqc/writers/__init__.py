"""Report writers: turn the controller's rows into files. No pytest here."""
