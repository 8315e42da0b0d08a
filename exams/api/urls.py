"""The exams surface: 000's `/create_exam` and `/get_exam`, plus list and download."""

urlpatterns: list = []
