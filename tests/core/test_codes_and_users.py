import pytest


@pytest.mark.django_db
def test_create_user_makes_an_approved_staff_account():
    from accounts.models import User

    user = User.objects.create_user(user_id="ST100", password="Harbour-Pass-2025")
    assert user.role == "staff"
    assert user.approval_status == "approved"
    assert user.check_password("Harbour-Pass-2025")


@pytest.mark.django_db
def test_codes_are_sequential_and_grow_past_three_digits():
    from core.codes import next_code
    from core.models import CodeSequence

    assert next_code("MR") == "MR001"
    CodeSequence.objects.filter(prefix="MR").update(last_value=999)
    assert next_code("MR") == "MR1000"
