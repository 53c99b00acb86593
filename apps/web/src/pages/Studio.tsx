import { useMutation } from '@tanstack/react-query';
import { useEffect, useId, useMemo, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { Link, useLocation, useNavigate } from 'react-router';
import {
  checkPlanLimits,
  MAX_COUNT,
  MAX_SEED,
  MAX_SIDE,
  MIN_SIDE,
  MODEL_IDS,
  MODELS,
  SAMPLERS,
  SIDE_STEP,
} from '@pingvas/core';
import { jobsStore, useJobs } from '../app/jobsStore.js';
import { useDocumentTitle } from '../app/pageTitle.js';
import { useMe } from '../app/session.js';
import { useTRPC } from '../app/trpc.js';
import { EmptyState } from '../components/Feedback.js';
import { InitImagePicker } from '../components/InitImagePicker.js';
import { InsufficientCreditsModal } from '../components/InsufficientCreditsModal.js';
import { JobCard } from '../components/JobCard.js';
import { RadioGroup } from '../components/RadioGroup.js';
import { StudioStatus } from '../components/StudioStatus.js';
import { useToast } from '../components/Toasts.js';
import { useJobStarted } from '../components/useJobStarted.js';
import { affordability, checkParams, formatCredits } from '../lib/credits.js';
import { describeError } from '../lib/errors.js';
import { ASPECT_RATIOS, presetsFor, type AspectRatio } from '../lib/sizes.js';
import {
  formFromParams,
  loadSavedForm,
  randomSeed,
  saveForm,
  toRequest,
  withInitImage,
  withModel,
  withPreset,
  type InitImage,
  type RecalledSources,
  type StudioForm,
} from '../lib/studioForm.js';

const COUNTS = Array.from({ length: MAX_COUNT }, (_, i) => i + 1);

/** What an image's page hands the studio: its settings, or itself as the starting image. */
export interface StudioRouteState {
  recall?: Parameters<typeof formFromParams>[0];
  sources?: RecalledSources;
  startFrom?: InitImage;
}

const isMac = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform);

function Field({
  label,
  htmlFor,
  error,
  hint,
  children,
  aside,
}: {
  label: string;
  htmlFor?: string;
  error?: string;
  hint?: ReactNode;
  children: ReactNode;
  aside?: ReactNode;
}) {
  return (
    <div className={`field${error ? ' has-error' : ''}`}>
      <div className="field-label">
        <label htmlFor={htmlFor}>{label}</label>
        {aside}
      </div>
      {children}
      {error ? (
        <p className="field-error" role="alert" data-testid={`error-${label.toLowerCase().replace(/\s+/g, '-')}`}>
          {error}
        </p>
      ) : (
        hint && <p className="field-hint">{hint}</p>
      )}
    </div>
  );
}

function RatioIcon({ ratio }: { ratio: AspectRatio | 'custom' }) {
  if (ratio === 'custom') return <span className="ratio-icon custom" aria-hidden="true" />;
  const [w, h] = ratio.split(':').map(Number) as [number, number];
  const scale = 14 / Math.max(w, h);
  return <span className="ratio-icon" aria-hidden="true" style={{ width: w * scale, height: h * scale }} />;
}

/** One side of a custom size; an emptied field is NaN, which the form check names, rather than 0. */
function SideInput(props: { id: string; side: 'width' | 'height'; value: number; onChange: (value: number) => void }) {
  const label = props.side === 'width' ? 'Width' : 'Height';
  return (
    <>
      <label htmlFor={props.id} className="sr-only">
        {label}
      </label>
      <input
        id={props.id}
        data-field={props.side}
        type="number"
        inputMode="numeric"
        min={MIN_SIDE}
        max={MAX_SIDE}
        step={SIDE_STEP}
        value={Number.isNaN(props.value) ? '' : props.value}
        onChange={(e) => props.onChange(e.target.value === '' ? Number.NaN : Number(e.target.value))}
        aria-label={label}
      />
    </>
  );
}

export function StudioPage() {
  const trpc = useTRPC();
  const jobStarted = useJobStarted();
  const toast = useToast();
  const me = useMe();
  const jobs = useJobs();
  const location = useLocation();
  const navigate = useNavigate();
  useDocumentTitle('Studio');
  const ids = {
    prompt: useId(),
    negative: useId(),
    steps: useId(),
    cfg: useId(),
    seed: useId(),
    sampler: useId(),
    width: useId(),
    height: useId(),
  };

  const [form, setForm] = useState<StudioForm>(() => loadSavedForm(window.localStorage));
  const [showErrors, setShowErrors] = useState(false);
  const [serverErrors, setServerErrors] = useState<Record<string, string>>({});
  const [showNegative, setShowNegative] = useState(() => form.negativePrompt !== '');
  const [shortfall, setShortfall] = useState<{ balance: number; needed: number } | null>(null);
  const promptRef = useRef<HTMLTextAreaElement>(null);

  // "Use these settings", "More like this" and "Use as starting image" from an image's page
  // arrive as router state, once.
  const arrival = useRef<string | null>(null);
  useEffect(() => {
    const state = location.state as StudioRouteState | null;
    if (!state?.recall && !state?.startFrom) return;
    // Once per arrival: the toast below re-renders the page before the state is cleared.
    if (arrival.current === location.key) return;
    arrival.current = location.key;
    void navigate(location.pathname, { replace: true, state: null });
    if (state.recall) {
      const next = formFromParams(state.recall, state.sources);
      setForm(next);
      setShowNegative(next.negativePrompt !== '');
      toast.show(
        'info',
        'Settings loaded',
        state.recall.seed === undefined || state.recall.seed === null
          ? 'The prompt and every parameter are in the form, with new seeds.'
          : 'The prompt and every parameter are in the form, with the same seed.',
      );
    } else if (state.startFrom) {
      setForm((f) => withInitImage(f, state.startFrom!));
      toast.show('info', 'Starting image chosen', 'Describe what it should become, then Generate.');
    }
    promptRef.current?.focus();
  }, [location.state, location.key, location.pathname, navigate, toast]);

  const check = useMemo(() => checkParams(toRequest(form)), [form]);
  // The plan's pixel budget is known here too: say so before the server has to.
  const planError = check.ok && me.data ? checkPlanLimits(check.params, me.data.tier) : null;
  const errors: Record<string, string | undefined> = {
    ...(showErrors && !check.ok ? check.fieldErrors : {}),
    ...(planError ? { width: planError } : {}),
    ...serverErrors,
  };
  const balance = me.data?.balance.available;
  const afford = check.estimate !== null ? affordability(check.estimate, balance) : null;

  const update = (patch: Partial<StudioForm>) => {
    setForm((f) => ({ ...f, ...patch }));
    setServerErrors({});
  };

  const create = useMutation(
    trpc.generation.create.mutationOptions({
      onSuccess: (result, params) => {
        jobStarted(result, { ...params, count: params.count ?? 1, totalSteps: params.steps });
      },
      onError: (error) => {
        const described = describeError(error);
        if (described.kind === 'payment_required') {
          setShortfall(described.credits ?? { balance: balance ?? 0, needed: check.estimate ?? 0 });
        } else if (
          described.kind === 'invalid' &&
          described.fieldErrors &&
          Object.keys(described.fieldErrors).length > 0
        ) {
          setServerErrors(described.fieldErrors);
        } else {
          toast.error(error);
        }
      },
    }),
  );

  function submit(event?: FormEvent) {
    event?.preventDefault();
    setShowErrors(true);
    if (!check.ok) {
      const first = Object.keys(check.fieldErrors)[0];
      document.querySelector<HTMLElement>(`[data-field="${first}"]`)?.focus();
      return;
    }
    if (planError) return;
    if (create.isPending) return;
    saveForm(window.localStorage, form);
    create.mutate(check.params);
  }

  // Ctrl/Cmd+Enter generates from anywhere on the page.
  const submitRef = useRef(submit);
  submitRef.current = submit;
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (
        event.key === 'Enter' &&
        (event.metaKey || event.ctrlKey) &&
        !document.body.classList.contains('modal-open')
      ) {
        event.preventDefault();
        submitRef.current();
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);

  const presets = presetsFor(form.model);
  const running = jobs.filter((j) => j.card.status === 'pending' || j.card.status === 'in_progress').length;

  return (
    <div className="studio">
      <h1 className="sr-only">Studio</h1>
      <StudioStatus jobs={jobs} />
      <form className="studio-panel" onSubmit={submit} noValidate aria-label="Generation settings">
        <Field
          label="Prompt"
          htmlFor={ids.prompt}
          error={errors.prompt}
          aside={<span className="muted small">{form.prompt.length}/2000</span>}
        >
          <textarea
            id={ids.prompt}
            ref={promptRef}
            data-field="prompt"
            data-testid="prompt"
            rows={4}
            placeholder="A futuristic city at dusk, glass towers, soft volumetric light…"
            value={form.prompt}
            onChange={(e) => update({ prompt: e.target.value })}
          />
        </Field>

        {showNegative ? (
          <Field
            label="Negative prompt"
            htmlFor={ids.negative}
            error={errors.negativePrompt}
            aside={
              <button
                type="button"
                className="link-button small"
                onClick={() => {
                  update({ negativePrompt: '' });
                  setShowNegative(false);
                }}
              >
                Remove
              </button>
            }
          >
            <textarea
              id={ids.negative}
              data-field="negativePrompt"
              rows={2}
              placeholder="blurry, low contrast, text, watermark"
              value={form.negativePrompt}
              onChange={(e) => update({ negativePrompt: e.target.value })}
            />
          </Field>
        ) : (
          <button type="button" className="link-button add-negative" onClick={() => setShowNegative(true)}>
            + Negative prompt
          </button>
        )}

        <InitImagePicker
          init={form.init}
          strength={form.strength}
          mask={form.mask}
          onInit={(init) => {
            setForm((f) => withInitImage(f, init));
            setServerErrors({});
          }}
          onStrength={(strength) => update({ strength })}
          onMask={(mask) => update({ mask })}
          error={
            errors.initImage ??
            errors['initImage.uploadId'] ??
            errors['initImage.imageId'] ??
            errors.strength ??
            errors.mask ??
            errors['mask.uploadId']
          }
        />

        <Field label="Model" error={errors.model}>
          <RadioGroup
            className="segmented"
            label="Model"
            value={form.model}
            onChange={(id) => setForm((f) => withModel(f, id))}
            options={MODEL_IDS.map((id) => ({
              value: id,
              testId: `model-${id}`,
              content: (
                <>
                  <strong>{id === 'sdxl' ? 'SDXL' : 'SD 1.5'}</strong>
                  <span>
                    {MODELS[id].defaultSize} px · ×{MODELS[id].priceFactor} credits
                  </span>
                </>
              ),
            }))}
          />
        </Field>

        <Field
          label="Size"
          error={errors.width ?? errors.height}
          aside={
            <span className="muted small" data-testid="size-readout">
              {form.width} × {form.height}
            </span>
          }
        >
          <RadioGroup<AspectRatio | 'custom'>
            className="ratio-chips"
            label="Aspect ratio"
            value={form.size}
            onChange={(size) => (size === 'custom' ? update({ size }) : setForm((f) => withPreset(f, size)))}
            options={[
              ...ASPECT_RATIOS.map((ratio) => ({
                value: ratio,
                testId: `ratio-${ratio}`,
                title: `${presets[ratio].width}×${presets[ratio].height}`,
                content: (
                  <>
                    <RatioIcon ratio={ratio} />
                    {ratio}
                  </>
                ),
              })),
              {
                value: 'custom' as const,
                testId: 'ratio-custom',
                content: (
                  <>
                    <RatioIcon ratio="custom" />
                    Custom
                  </>
                ),
              },
            ]}
          />
          {form.size === 'custom' && (
            <div className="custom-size">
              <SideInput id={ids.width} side="width" value={form.width} onChange={(width) => update({ width })} />
              <span aria-hidden="true">×</span>
              <SideInput id={ids.height} side="height" value={form.height} onChange={(height) => update({ height })} />
              <span className="muted small">
                multiples of {SIDE_STEP}, {MIN_SIDE}–{MAX_SIDE}
              </span>
            </div>
          )}
        </Field>

        <div className="field-row">
          <Field
            label="Steps"
            htmlFor={ids.steps}
            error={errors.steps}
            aside={<span className="value-readout">{Number.isNaN(form.steps) ? '–' : form.steps}</span>}
          >
            <input
              id={ids.steps}
              data-field="steps"
              data-testid="steps"
              type="range"
              min={1}
              max={150}
              value={Number.isNaN(form.steps) ? 30 : form.steps}
              onChange={(e) => update({ steps: Number(e.target.value) })}
            />
          </Field>
          <Field
            label="CFG scale"
            htmlFor={ids.cfg}
            error={errors.cfgScale}
            aside={<span className="value-readout">{form.cfgScale.toFixed(1)}</span>}
          >
            <input
              id={ids.cfg}
              data-field="cfgScale"
              type="range"
              min={0}
              max={30}
              step={0.5}
              value={form.cfgScale}
              onChange={(e) => update({ cfgScale: Number(e.target.value) })}
            />
          </Field>
        </div>

        <div className="field-row">
          <Field label="Seed" htmlFor={ids.seed} error={errors.seed}>
            <div className="seed-control">
              <RadioGroup
                className="segmented compact"
                label="Seed mode"
                value={form.seedMode}
                onChange={(seedMode) =>
                  update(seedMode === 'fixed' ? { seedMode, seed: form.seed || String(randomSeed()) } : { seedMode })
                }
                options={[
                  { value: 'random', content: 'Random' },
                  { value: 'fixed', content: 'Fixed' },
                ]}
              />
              {form.seedMode === 'fixed' && (
                <>
                  <input
                    id={ids.seed}
                    data-field="seed"
                    type="text"
                    inputMode="numeric"
                    value={form.seed}
                    maxLength={String(MAX_SEED).length}
                    onChange={(e) => update({ seed: e.target.value.replace(/[^\d]/g, '') })}
                    aria-label="Seed value"
                  />
                  <button
                    type="button"
                    className="icon-button"
                    title="New random seed"
                    aria-label="New random seed"
                    onClick={() => update({ seed: String(randomSeed()) })}
                  >
                    ⟳
                  </button>
                </>
              )}
            </div>
          </Field>
          <Field label="Sampler" htmlFor={ids.sampler} error={errors.sampler}>
            <select
              id={ids.sampler}
              data-field="sampler"
              value={form.sampler}
              onChange={(e) => update({ sampler: e.target.value as StudioForm['sampler'] })}
            >
              {SAMPLERS.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </Field>
        </div>

        <Field label="Images" error={errors.count}>
          <RadioGroup
            className="segmented compact count-choice"
            label="Number of images"
            value={String(form.count)}
            onChange={(count) => update({ count: Number(count) })}
            options={COUNTS.map((n) => ({ value: String(n), testId: `count-${n}`, content: String(n) }))}
          />
        </Field>

        <div className="generate-bar">
          <div className="generate-row">
            {/* Not a live region: it changes with every keystroke, the status region speaks for jobs. */}
            <div className="estimate">
              <span className="muted small">Estimated cost</span>
              <strong data-testid="estimate">
                {check.estimate !== null ? `${formatCredits(check.estimate)} credits` : '—'}
              </strong>
              {afford && !afford.affordable && balance !== undefined && (
                <span className="short small" data-testid="estimate-short">
                  You have {formatCredits(balance)}
                </span>
              )}
              {afford?.affordable && balance !== undefined && check.estimate !== null && (
                <span className="muted small">{formatCredits(balance - check.estimate)} left after</span>
              )}
            </div>
            {/* aria-disabled, not disabled: a disabled button drops keyboard focus to the page. */}
            <button
              type="submit"
              className="button primary large generate"
              aria-disabled={create.isPending}
              data-testid="generate"
            >
              {create.isPending ? 'Queuing…' : 'Generate'}
              <kbd>{isMac ? '⌘' : 'Ctrl'} ↵</kbd>
            </button>
          </div>
          <p className="fine-print">
            Charged by engine time, never more than the estimate. Unused credits return when the job ends.
          </p>
        </div>
      </form>

      <section className="studio-results" aria-label="Generations">
        <div className="results-head">
          <h2>Generations {running > 0 && <span className="count-badge">{running} running</span>}</h2>
          {jobs.some((j) => j.card.status !== 'pending' && j.card.status !== 'in_progress') && (
            <button type="button" className="link-button small" onClick={() => jobsStore.clearFinished()}>
              Clear finished
            </button>
          )}
        </div>
        {jobs.length === 0 ? (
          <EmptyState
            title="Your images will appear here"
            action={
              <Link to="/gallery" className="button ghost">
                Open the gallery
              </Link>
            }
          >
            Describe what you want to see, pick a size, and press Generate ({isMac ? '⌘' : 'Ctrl'}+Enter). You will see
            your place in the queue, then every step.
          </EmptyState>
        ) : (
          <div className="job-grid">
            {jobs.map((entry) => (
              <JobCard key={entry.card.jobId} entry={entry} />
            ))}
          </div>
        )}
      </section>

      {shortfall && (
        <InsufficientCreditsModal
          balance={shortfall.balance}
          needed={shortfall.needed}
          onClose={() => setShortfall(null)}
        />
      )}
    </div>
  );
}
