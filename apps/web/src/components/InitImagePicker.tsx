import { useEffect, useId, useRef, useState, type DragEvent } from 'react';
import { MAX_STRENGTH, MIN_STRENGTH, UPLOAD_IMAGE_TYPES } from '@pingvas/core';
import type { InitImage, MaskChoice } from '../lib/studioForm.js';
import { MaskEditor } from './MaskEditor.js';
import { Modal } from './Modal.js';
import { useImageUpload, type UploadState } from './useImageUpload.js';

function UploadProgress({ state }: { state: UploadState }) {
  if (state.phase === 'idle') return null;
  if (state.phase === 'failed') {
    return (
      <p className="field-error" role="alert" data-testid="upload-error">
        {state.message}
      </p>
    );
  }
  const uploading = state.phase === 'uploading';
  return (
    <div className="upload-progress" data-testid="upload-progress">
      <progress
        max={100}
        value={uploading ? Math.round(state.fraction * 100) : undefined}
        aria-label={uploading ? `Uploading ${state.name}` : `Checking ${state.name}`}
      />
      <span className="muted small">
        {uploading ? `Uploading ${state.name}… ${Math.round(state.fraction * 100)}%` : `Checking ${state.name}…`}
      </span>
    </div>
  );
}

/**
 * "Start from an image": upload a picture (file picker or drop) or bring one from the gallery
 * (an image's "Use as starting image"), then how strongly to redraw it and, optionally, a
 * mask of the part to redraw (inpainting).
 */
export function InitImagePicker({
  init,
  strength,
  mask,
  onInit,
  onStrength,
  onMask,
  error,
}: {
  init: InitImage | null;
  strength: number;
  mask: MaskChoice | null;
  onInit: (init: InitImage | null) => void;
  onStrength: (strength: number) => void;
  onMask: (mask: MaskChoice | null) => void;
  /** A server or schema error about the init image, strength or mask. */
  error?: string;
}) {
  const ids = { file: useId(), strength: useId(), hint: useId(), legend: useId() };
  const picture = useImageUpload();
  const maskUpload = useImageUpload();
  const [dragging, setDragging] = useState(false);
  const [painting, setPainting] = useState(false);
  const objectUrls = useRef<string[]>([]);
  useEffect(() => () => objectUrls.current.forEach((url) => URL.revokeObjectURL(url)), []);

  function localUrl(blob: Blob): string {
    const url = URL.createObjectURL(blob);
    objectUrls.current.push(url);
    return url;
  }

  async function take(file: File | undefined) {
    if (!file) return;
    const uploaded = await picture.upload(file, file.name);
    if (!uploaded) return;
    onInit({
      source: { uploadId: uploaded.uploadId },
      url: localUrl(file),
      width: uploaded.width,
      height: uploaded.height,
      label: file.name,
    });
  }

  async function applyMask(png: Blob) {
    const uploaded = await maskUpload.upload(png, 'mask.png');
    if (!uploaded) return;
    onMask({ uploadId: uploaded.uploadId, url: localUrl(png) });
    setPainting(false);
  }

  function onDrop(event: DragEvent<HTMLDivElement>) {
    event.preventDefault();
    setDragging(false);
    void take(event.dataTransfer.files[0]);
  }

  return (
    <fieldset className="field init-image" aria-labelledby={ids.legend} data-testid="init-image">
      <legend id={ids.legend} className="field-label-text">
        Start from an image <span className="muted small">(optional)</span>
      </legend>
      {init ? (
        <>
          <div className="init-preview">
            {init.url ? (
              <img src={init.url} alt={`Starting image: ${init.label}`} data-testid="init-preview" />
            ) : (
              <span className="init-missing muted small">The starting picture is no longer stored.</span>
            )}
            {mask?.url && <img className="init-mask" src={mask.url} alt="" data-testid="mask-preview" />}
            <div className="init-meta">
              <span className="small">{init.label}</span>
              <span className="muted small">
                {init.width} × {init.height}
                {mask ? ' · with a mask (inpainting)' : ''}
              </span>
              <div className="init-actions">
                {init.url && (
                  <button
                    type="button"
                    className="button small"
                    onClick={() => setPainting(true)}
                    data-testid="paint-mask"
                  >
                    {mask ? 'Repaint the mask' : 'Paint a mask'}
                  </button>
                )}
                {mask && (
                  <button type="button" className="button small ghost" onClick={() => onMask(null)}>
                    Remove the mask
                  </button>
                )}
                <button
                  type="button"
                  className="button small ghost"
                  onClick={() => onInit(null)}
                  data-testid="init-remove"
                >
                  Remove starting image
                </button>
              </div>
            </div>
          </div>
          <div className="field-label">
            <label htmlFor={ids.strength}>Strength</label>
            <span className="value-readout">{strength.toFixed(2)}</span>
          </div>
          <input
            id={ids.strength}
            data-field="strength"
            data-testid="strength"
            type="range"
            min={MIN_STRENGTH}
            max={MAX_STRENGTH}
            step={0.05}
            value={strength}
            aria-describedby={ids.hint}
            onChange={(e) => onStrength(Number(e.target.value))}
          />
          <p id={ids.hint} className="field-hint">
            How much is redrawn: low keeps the picture, 1 keeps only its colours. Cropped to fill the size below.
          </p>
        </>
      ) : (
        <div
          className={`drop-zone${dragging ? ' dragging' : ''}`}
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={onDrop}
          data-testid="init-drop"
        >
          <input
            id={ids.file}
            className="file-input"
            type="file"
            accept={UPLOAD_IMAGE_TYPES.join(',')}
            data-testid="init-file"
            onChange={(e) => {
              void take(e.target.files?.[0]);
              e.target.value = '';
            }}
          />
          <label htmlFor={ids.file} className="button small">
            Upload a picture
          </label>
          {/* No link here: the header's Gallery link stays the only one of that name. */}
          <span className="muted small">
            or drop one here · PNG, JPEG or WebP up to 10 MB · or open one of your images and choose “Use as starting
            image”
          </span>
        </div>
      )}
      <UploadProgress state={picture.state} />
      {error && (
        <p className="field-error" role="alert" data-testid="error-init-image">
          {error}
        </p>
      )}
      {painting && init?.url && (
        <Modal title="Paint a mask" size="large" onClose={() => setPainting(false)} testId="mask-dialog">
          <MaskEditor
            image={{ url: init.url, width: init.width, height: init.height, label: init.label }}
            busy={maskUpload.state.phase === 'uploading' || maskUpload.state.phase === 'checking'}
            onApply={(png) => void applyMask(png)}
          />
          <UploadProgress state={maskUpload.state} />
        </Modal>
      )}
    </fieldset>
  );
}
