-- Image tools: a job has a kind (txt2img, img2img, inpaint, upscale), makes 1–4 images, and may
-- start from an image. An input is either a checked upload or one of the user's gallery images;
-- the job keeps the stored PNG's key and size, so a retry (or a worker on another cloud) finds
-- exactly what was paid for even after the source row is gone. The source ids stay for lineage.
ALTER TABLE generation_jobs
  ADD COLUMN kind text NOT NULL DEFAULT 'txt2img' CHECK (kind IN ('txt2img', 'img2img', 'inpaint', 'upscale')),
  ADD COLUMN count integer NOT NULL DEFAULT 1 CHECK (count BETWEEN 1 AND 4),
  ADD COLUMN strength real CHECK (strength IS NULL OR (strength >= 0.05 AND strength <= 1)),
  ADD COLUMN upscale_scale integer CHECK (upscale_scale IS NULL OR upscale_scale IN (2, 4)),
  ADD COLUMN init_upload_id uuid REFERENCES uploads(id) ON DELETE SET NULL,
  ADD COLUMN init_image_id uuid,
  ADD COLUMN init_key text,
  ADD COLUMN init_width integer,
  ADD COLUMN init_height integer,
  ADD COLUMN mask_upload_id uuid REFERENCES uploads(id) ON DELETE SET NULL,
  ADD COLUMN mask_key text,
  ADD CONSTRAINT generation_jobs_kind_inputs CHECK (
    CASE kind
      WHEN 'txt2img' THEN init_key IS NULL AND mask_key IS NULL AND strength IS NULL AND upscale_scale IS NULL
      WHEN 'img2img' THEN init_key IS NOT NULL AND mask_key IS NULL AND strength IS NOT NULL AND upscale_scale IS NULL
      WHEN 'inpaint' THEN init_key IS NOT NULL AND mask_key IS NOT NULL AND strength IS NOT NULL AND upscale_scale IS NULL
      WHEN 'upscale' THEN init_key IS NOT NULL AND mask_key IS NULL AND strength IS NULL AND upscale_scale IS NOT NULL AND count = 1
    END
  ),
  ADD CONSTRAINT generation_jobs_init_size CHECK ((init_key IS NULL) = (init_width IS NULL AND init_height IS NULL));
--> statement-breakpoint
-- A job's images: one per index (0 … count − 1), each a gallery item of its own. `parent_image_id`
-- is the gallery image a job started from (an upscale's source, an img2img from the gallery).
ALTER TABLE images
  ADD COLUMN kind text NOT NULL DEFAULT 'txt2img' CHECK (kind IN ('txt2img', 'img2img', 'inpaint', 'upscale')),
  ADD COLUMN job_index integer NOT NULL DEFAULT 0 CHECK (job_index BETWEEN 0 AND 3),
  ADD COLUMN parent_image_id uuid REFERENCES images(id) ON DELETE SET NULL;
--> statement-breakpoint
ALTER TABLE images DROP CONSTRAINT images_job_id_unique;
--> statement-breakpoint
ALTER TABLE images ADD CONSTRAINT images_job_index_unique UNIQUE (job_id, job_index);
--> statement-breakpoint
ALTER TABLE generation_jobs ADD CONSTRAINT generation_jobs_init_image_fk
  FOREIGN KEY (init_image_id) REFERENCES images(id) ON DELETE SET NULL;
--> statement-breakpoint
CREATE INDEX images_parent_idx ON images (parent_image_id) WHERE parent_image_id IS NOT NULL;
