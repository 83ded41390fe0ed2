"""The image gallery: every generated image as a file under the data directory, its prompt, parameters, model
and cost in the database; searchable by prompt, kept across restarts.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from core.base.clock import utc_now_iso
from core.base.db import engine_for
from core.images.generation import ImageRequest, ImageResult

_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


@dataclass(frozen=True)
class GalleryImage:
    """One kept image and how it was made."""

    id: str
    request_id: str | None
    created_at: str
    user: str | None
    prompt: str
    model: str
    params: dict
    cost_usd: float | None
    cost_estimated: bool
    path: str
    mime: str

    def read(self) -> bytes:
        return Path(self.path).read_bytes()

    @property
    def file_name(self) -> str:
        return f"promptlab-{self.id[:8]}.{_EXT.get(self.mime, 'png')}"


class Gallery:
    """Images on disk under `<data_dir>/images`, metadata in the database at a SQLAlchemy URL."""

    def __init__(self, url: str, data_dir: str | Path):
        self.engine = engine_for(url)
        self.folder = Path(data_dir) / "images"

    def add(self, request: ImageRequest, result: ImageResult, user: str | None) -> list[GalleryImage]:
        """Keep every image of a result; the cost is split evenly between them."""
        self.folder.mkdir(parents=True, exist_ok=True)
        share = None if result.cost_usd is None else result.cost_usd / len(result.images)
        kept = []
        for data in result.images:
            image_id = uuid.uuid4().hex
            path = self.folder / f"{image_id}.{_EXT.get(result.mime, 'png')}"
            path.write_bytes(data)
            params = {k: v for k, v in asdict(request).items() if k not in ("prompt", "model")}
            kept.append(GalleryImage(image_id, result.request_id, utc_now_iso(), user, request.prompt, request.model,
                                     params, share, result.cost_estimated, str(path), result.mime))
        with self.engine.begin() as conn:
            for img in kept:
                conn.execute(sa.text("INSERT INTO images (id, request_id, created_at, user_id, prompt, model, "
                                     "params, cost_usd, cost_estimated, path, mime) VALUES (:id, :rid, :t, :u, :p, "
                                     ":m, :params, :c, :e, :path, :mime)"),
                             {"id": img.id, "rid": img.request_id, "t": img.created_at, "u": img.user,
                              "p": img.prompt, "m": img.model, "params": json.dumps(img.params), "c": img.cost_usd,
                              "e": img.cost_estimated, "path": img.path, "mime": img.mime})
        return kept

    @staticmethod
    def _image(row: sa.Row) -> GalleryImage:
        return GalleryImage(row.id, row.request_id, row.created_at, row.user_id, row.prompt, row.model,
                            json.loads(row.params), row.cost_usd, bool(row.cost_estimated), row.path, row.mime)

    def search(self, text: str = "", limit: int = 24, offset: int = 0, user: str | None = None,
               admin: bool = False) -> tuple[list[GalleryImage], int]:
        """Images whose prompt contains the text (case-insensitive), newest first, and how many match — only
        `user`'s own unless an admin asks (`user=None`: the library's own unscoped read)."""
        clauses: list[str] = []
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if text.strip():
            clauses.append("lower(prompt) LIKE :q")
            params["q"] = f"%{text.strip().lower()}%"
        if user is not None and not admin:
            clauses.append("user_id = :u")
            params["u"] = user
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self.engine.connect() as conn:
            total = conn.execute(sa.text(f"SELECT count(*) FROM images {where}"), params).scalar_one()
            rows = conn.execute(sa.text(f"SELECT * FROM images {where} ORDER BY created_at DESC, id "
                                        "LIMIT :limit OFFSET :offset"), params)
            return [self._image(r) for r in rows], int(total)

    def get(self, image_id: str, user: str | None = None, admin: bool = False) -> GalleryImage | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT * FROM images WHERE id = :id"), {"id": image_id}).first()
        if row is None or (user is not None and not admin and row.user_id != user):
            return None
        return self._image(row)

    def delete(self, image_id: str, user: str | None = None, admin: bool = False) -> None:
        """Remove the image's file and its row (only `user`'s own unless an admin asks)."""
        image = self.get(image_id, user, admin)
        if image is None:
            return
        Path(image.path).unlink(missing_ok=True)
        with self.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM images WHERE id = :id"), {"id": image_id})
