"""Pages (not API): the widget's demo."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from bots.selectors import demo_bot_get


def demo_page(request: HttpRequest) -> HttpResponse:
    """The widget on a plain page, for the bot chosen as the demo bot (`manage.py demo_bot` or the admin)."""
    bot = demo_bot_get()
    return render(request, "demo/index.html", {"bot": bot}, status=200 if bot is not None else 404)
