"""Who may sign in and for how long: login lockout (django-axes) and API tokens that expire and die."""
