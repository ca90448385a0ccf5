"""Every allowed attachment type is checked by its content (issue 11.9), through
services.add_attachment with the default ATTACHMENT_ALLOWED_EXTENSIONS: a file whose bytes are of
the type its extension names is stored; one whose bytes are something else is refused with the
field error ``file_content`` and nothing is stored."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.errors import DomainError
from maintenance import services
from maintenance.models import Attachment
from tests.files import HTML_PAGE, WINDOWS_EXE, pdf_bytes, png_bytes

pytestmark = pytest.mark.django_db

OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504  # a Compound File (legacy Office) header
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"


def office(*parts: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for part in ("[Content_Types].xml", *parts):
            archive.writestr(part, "<x/>")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _every_default_type(settings):
    settings.ATTACHMENT_ALLOWED_EXTENSIONS = [
        "pdf", "png", "jpg", "jpeg", "gif", "txt", "csv", "doc", "docx", "xls", "xlsx"
    ]
    settings.ATTACHMENT_MAX_BYTES = 64 * 1024


def upload(personas, make_request, name, content):
    obj = make_request(personas["staff"])
    return services.add_attachment(request_obj=obj, actor=personas["staff"],
                                   uploaded_file=SimpleUploadedFile(name, content))


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("survey.pdf", pdf_bytes(), "application/pdf"),
        ("hull.png", png_bytes(), "image/png"),
        ("deck.jpg", JPEG, "image/jpeg"),
        ("deck.jpeg", JPEG, "image/jpeg"),
        ("chart.gif", GIF, "image/gif"),
        ("notes.txt", b"Pump overhauled.\r\nNext check in May.\n", "text/plain"),
        ("parts.csv", "Pièce;qté\nFiltre à huile;2\nBMW gasket;1\n".encode("cp1252"), "text/csv"),
        ("parts-utf8.csv", "Pièce,qté\nFiltre à huile,2\n".encode("utf-8-sig"), "text/csv"),
        ("page.txt", HTML_PAGE, "text/plain"),  # markup is text; served as text/plain, as an attachment
        ("old.doc", OLE, "application/msword"),
        ("old.xls", OLE, "application/vnd.ms-excel"),
        # (the Office Open XML types come from the host's mime.types: not pinned here)
        ("report.docx", office("word/document.xml"), None),
        ("stock.xlsx", office("xl/workbook.xml"), None),
    ],
)
def test_content_of_the_named_type_is_stored(personas, make_request, name, content, content_type):
    attachment = upload(personas, make_request, name, content)
    assert attachment.original_name == name
    if content_type:
        assert attachment.content_type == content_type
    with attachment.file.open("rb") as handle:
        assert handle.read() == content


@pytest.mark.parametrize(
    ("name", "content", "label"),
    [
        ("invoice.pdf", WINDOWS_EXE, "a PDF document"),
        ("invoice.pdf", HTML_PAGE, "a PDF document"),
        ("hull.png", HTML_PAGE, "a PNG image"),
        ("hull.png", b"\x89PNG data", "a PNG image"),  # the first four bytes only
        ("deck.jpg", GIF, "a JPEG image"),
        ("chart.gif", png_bytes(), "a GIF image"),
        ("notes.txt", WINDOWS_EXE, "plain text"),
        ("notes.txt", pdf_bytes(), "plain text"),
        ("notes.txt", "UTF-16 text".encode("utf-16"), "plain text"),
        ("parts.csv", png_bytes(), "a CSV text file"),
        ("old.doc", WINDOWS_EXE, "a Word document"),
        ("old.xls", office("xl/workbook.xml"), "an Excel workbook"),
        ("report.docx", office("xl/workbook.xml"), "a Word document"),
        ("report.docx", OLE, "a Word document"),
        ("stock.xlsx", office("payload.exe"), "an Excel workbook"),
        ("stock.xlsx", b"PK\x03\x04 not really an archive", "an Excel workbook"),
    ],
)
def test_content_of_another_type_is_refused(personas, make_request, name, content, label):
    with pytest.raises(DomainError) as refused:
        upload(personas, make_request, name, content)
    assert (refused.value.field, refused.value.code) == ("file", "file_content")
    assert str(refused.value).startswith(f"The content of {name} is not {label}, so it was not uploaded.")
    assert not Attachment.objects.exists()


def test_an_allowed_extension_that_cannot_be_checked_is_refused(personas, make_request, settings):
    settings.ATTACHMENT_ALLOWED_EXTENSIONS = ["pdf", "zip"]
    with pytest.raises(DomainError) as refused:
        upload(personas, make_request, "bundle.zip", office("word/document.xml"))
    assert refused.value.code == "file_type"
    assert str(refused.value) == "Files .zip cannot be checked by their content, so they are not accepted."
    assert not Attachment.objects.exists()
