"""Demo data, created through the services so that every audit record is real.

Running it twice is safe: accounts are created only when missing, and the
requests, emergencies and inventory are only added to an empty database."""

import os
from datetime import date, timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction

DEMO_PASSWORD = "Harbour-Demo-2025"

USERS = [
    ("ADM001", "admin", "Alex Morgan", "Administration"),
    ("PE001", "port_engineer", "Priya Eriksen", "Engineering"),
    ("PE002", "port_engineer", "Pedro Esteves", "Engineering"),
    ("ST001", "staff", "Sam Turner", "Deck crew"),
    ("ST002", "staff", "Sofia Tan", "Engine room"),
    ("ST003", "staff", "Stefan Thorsen", "Office"),
]
PENDING_USER = ("ST900", "staff", "Nina Pending", "Deck crew")

INVENTORY = [
    ("FLT-0042", "Fuel filter element", "Store A / shelf 3", 24, 10),
    ("IMP-1180", "Raw water pump impeller", "Store A / shelf 1", 3, 4),
    ("GSK-7731", "Cylinder head gasket", "Store B / bin 12", 8, 2),
    ("BLT-2205", "Alternator drive belt", "Store A / shelf 5", 6, 3),
    ("LJK-0900", "Inflatable life jacket", "Safety locker", 40, 30),
    ("ANO-0310", "Zinc anode, hull", "Store C", 1, 6),
]

REQUESTS = [
    # vessel, title, category, priority, requester, final state
    ("MV Northern Star", "Replace fuel filters on main engine", "engine", "high", "ST001", "completed"),
    ("MV Northern Star", "Inspect hull anodes", "hull", "medium", "ST001", "in_progress"),
    ("Tug Resolute", "Radar intermittent at night", "navigation", "urgent", "ST002", "approved"),
    ("Tug Resolute", "Repaint deck markings", "deck", "low", "ST002", "pending"),
    ("Pilot Boat Kestrel", "Life raft annual service", "safety", "high", "ST003", "pending"),
    ("Pilot Boat Kestrel", "Upgrade cabin lighting to LED", "electrical", "low", "ST003", "rejected"),
    ("MV Harbour Light", "Bow thruster vibration", "engine", "medium", "ST001", "cancelled"),
]

EMERGENCIES = [
    ("Tug Resolute", "engine_failure", "Main engine stopped, drifting near buoy 7", "Outer harbour, buoy 7", "critical", "dispatched"),
    ("MV Northern Star", "medical", "Crew member with a hand injury", "Berth 4", "high", "resolved"),
    ("Pilot Boat Kestrel", "pollution", "Small oil sheen seen astern", "Inner basin", "low", "reported"),
]


class Command(BaseCommand):
    help = "Load demo users, maintenance requests, emergencies and inventory through the normal services."

    def handle(self, *args, **options):
        from accounts import services as accounts
        from accounts.models import User
        from audit.context import audit_context

        with audit_context(actor="system", reason="Demo data"):
            users = {}
            for user_id, role, name, dept in USERS:
                user = User.objects.filter(user_id=user_id).first()
                if user is None:
                    user = User.objects.create_user(
                        user_id=user_id, password=DEMO_PASSWORD, role=role, full_name=name,
                        email=f"{user_id.lower()}@msc.example", department=dept,
                    )
                users[user_id] = user
            if not User.objects.filter(user_id=PENDING_USER[0]).exists():
                accounts.register_user(
                    user_id=PENDING_USER[0], password=DEMO_PASSWORD, full_name=PENDING_USER[2],
                    email="st900@msc.example", department=PENDING_USER[3],
                )
            self._seed_domain(users)

        # the address make run serves (PORT overrides 8000, as for the web process)
        port = os.environ.get("PORT", "").strip() or "8000"
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Log in at http://127.0.0.1:{port}/ with:"))
        for user_id, role, name, _ in USERS:
            self.stdout.write(f"  {user_id:<7} {role:<14} {name}")
        self.stdout.write(f"  {PENDING_USER[0]:<7} staff (pending approval)")
        self.stdout.write(f"Password for every demo account: {DEMO_PASSWORD}")

    @transaction.atomic
    def _seed_domain(self, users):
        from emergencies import services as emergencies
        from emergencies.models import Emergency
        from maintenance import services as maintenance
        from maintenance.models import InventoryItem, MaintenanceRequest

        admin, pe1, pe2 = users["ADM001"], users["PE001"], users["PE002"]

        if not InventoryItem.objects.exists():
            for part, name, location, qty, minimum in INVENTORY:
                item = maintenance.create_item(
                    actor=admin, part_number=part, name=name, location=location,
                    quantity_on_hand=qty, minimum_stock=minimum, reason="Initial stock count",
                )
                if part == "FLT-0042":
                    maintenance.adjust_stock(item=item, actor=pe1, quantity_change=-4, reason="Used on MR001")

        if not MaintenanceRequest.objects.exists():
            today = date.today()
            for i, (vessel, title, category, priority, requester, state) in enumerate(REQUESTS):
                req = maintenance.create_request(
                    actor=users[requester], vessel=vessel, title=title,
                    description=f"{title}. Reported by the crew of {vessel}.",
                    category=category, priority=priority, due_date=today + timedelta(days=7 + i * 3),
                    estimated_cost=Decimal("450.00") + i * 125,
                )
                maintenance.add_comment(request_obj=req, actor=users[requester], body="Photos available on request.")
                if state == "rejected":
                    maintenance.reject_request(request_obj=req, actor=pe1, reason="Not budgeted this quarter")
                    continue
                if state == "cancelled":
                    maintenance.cancel_request(request_obj=req, actor=users[requester], reason="Fixed by the crew")
                    continue
                if state == "pending":
                    continue
                maintenance.approve_request(request_obj=req, actor=pe1, reason="Safety relevant")
                maintenance.assign_request(request_obj=req, actor=pe1, assignee=pe2, reason="Engine specialist")
                maintenance.add_comment(request_obj=req, actor=pe1, body="Approved; parts are in store.")
                if state == "approved":
                    continue
                maintenance.start_request(request_obj=req, actor=pe2)
                if state == "completed":
                    maintenance.complete_request(request_obj=req, actor=pe2, reason="Filters replaced, engine tested")

        if not Emergency.objects.exists():
            for vessel, etype, description, location, severity, state in EMERGENCIES:
                reporter = users["ST002"] if severity == "critical" else users["ST001"]
                emg = emergencies.report_emergency(
                    actor=reporter, vessel=vessel, emergency_type=etype, description=description,
                    location=location, severity=severity,
                )
                if state == "reported":
                    continue
                emergencies.acknowledge_emergency(emergency=emg, actor=pe1)
                if state in ("dispatched", "resolved"):
                    emergencies.dispatch_emergency(emergency=emg, actor=pe1, reason="Tug and engineer sent")
                if state == "resolved":
                    emergencies.resolve_emergency(emergency=emg, actor=pe2, reason="First aid given, no evacuation")
