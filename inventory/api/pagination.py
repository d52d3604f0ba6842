"""Pagination of every list: `?limit=&offset=`, with bounds the database can always answer."""

from rest_framework.pagination import LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """DRF's limit/offset; a limit past 1,000 is read as 1,000, an offset past 2**31-1 as that."""

    max_limit = 1000
    max_offset = 2**31 - 1

    def get_offset(self, request):
        return min(super().get_offset(request), self.max_offset)
