from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from scrm.dashboard.selectors import lane_status_list
from scrm.tenancy.permissions import corp_view


@corp_view()
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/home.html", {"lanes": lane_status_list()})
