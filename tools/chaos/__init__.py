"""The chaos run: real server processes, Redis and PostgreSQL broken one fault after another while
rooms full of live clients keep counting; what each fault cost, in scans and deliveries."""
