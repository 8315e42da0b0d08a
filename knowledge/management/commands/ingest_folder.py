"""Ingests every supported file of a folder into one of a user's knowledge bases, with a progress bar."""

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts.selectors import user_by_email
from core.errors import DomainError
from knowledge.extraction import SUPPORTED_EXTENSIONS
from knowledge.services import document_upload, knowledge_base_get_or_create, read_path


class Command(BaseCommand):
    help = "Upload a folder's .txt, .md, .pdf, .html and .docx files into a user's knowledge base."

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path)
        parser.add_argument("--user", required=True, help="The owner's email.")
        parser.add_argument("--base", required=True, help="The knowledge base name (created if needed).")

    def handle(self, *args, folder: Path, user: str, base: str, **options):
        owner = user_by_email(email=user)
        if owner is None:
            raise CommandError(f"No user with email {user}.")
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        try:
            knowledge_base = knowledge_base_get_or_create(owner=owner, name=base)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS)
        queued = duplicates = refused = 0
        for path in tqdm(files, desc="upload", unit="file", disable=None):
            try:
                upload = SimpleUploadedFile(path.name, read_path(path=path))
                _doc, created = document_upload(knowledge_base=knowledge_base, upload=upload)
            except DomainError as exc:
                refused += 1
                self.stderr.write(f"{path}: {exc.message}")
                continue
            except OSError as exc:
                refused += 1
                self.stderr.write(f"{path}: {exc.strerror or exc}")
                continue
            queued += created
            duplicates += not created
        self.stdout.write(f"{queued} queued, {duplicates} already there, {refused} refused (into '{knowledge_base}').")
