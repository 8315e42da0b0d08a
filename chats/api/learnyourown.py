"""The 000 surface's `/chat`: an answer grounded in the user's knowledge."""

urlpatterns = []
