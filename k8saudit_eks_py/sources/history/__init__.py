"""What the sources reading the past share: the time window of open_params, the finite source that ends
the capture (EOF) once everything was delivered, and the retry loop of their AWS calls."""
