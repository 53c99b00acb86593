import { useRef, type KeyboardEvent, type ReactNode } from 'react';
import { nextRadioIndex } from '../lib/focus.js';

export interface RadioOption<T extends string> {
  value: T;
  content: ReactNode;
  title?: string;
  testId?: string;
}

/**
 * A real radio group: one tab stop (the checked option), arrow keys move and choose, Home
 * and End jump to the ends, as the ARIA radio group pattern asks.
 */
export function RadioGroup<T extends string>({
  label,
  options,
  value,
  onChange,
  className,
}: {
  label: string;
  options: readonly RadioOption<T>[];
  value: T;
  onChange: (value: T) => void;
  className?: string;
}) {
  const buttons = useRef<(HTMLButtonElement | null)[]>([]);
  const checkedIndex = Math.max(
    0,
    options.findIndex((o) => o.value === value),
  );

  function onKeyDown(event: KeyboardEvent, index: number) {
    const next = nextRadioIndex(index, event.key, options.length);
    if (next === null) return;
    event.preventDefault();
    onChange(options[next]!.value);
    buttons.current[next]?.focus();
  }

  return (
    <div className={className} role="radiogroup" aria-label={label}>
      {options.map((option, index) => (
        <button
          key={option.value}
          ref={(element) => {
            buttons.current[index] = element;
          }}
          type="button"
          role="radio"
          aria-checked={option.value === value}
          tabIndex={index === checkedIndex ? 0 : -1}
          className={option.value === value ? 'on' : ''}
          title={option.title}
          onClick={() => onChange(option.value)}
          onKeyDown={(event) => onKeyDown(event, index)}
          data-testid={option.testId}
        >
          {option.content}
        </button>
      ))}
    </div>
  );
}
