from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "inventory.accounts"
    label = "accounts"

    def ready(self):
        from . import tokens  # noqa: F401  (connects: tokens die with the password)
