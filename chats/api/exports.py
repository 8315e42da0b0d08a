"""placeholder: filled by issue 19"""

urlpatterns: list = []
