import type { z } from 'zod';

const count = (n: number | bigint) => Number(n).toLocaleString('en-US');

/**
 * An error map for one field: every message names the field, so a worker log line or an
 * API error says which input was wrong without the reader decoding an issue path.
 */
export function fieldError(label: string): z.core.$ZodErrorMap {
  return (issue) => {
    switch (issue.code) {
      case 'invalid_type':
        if (issue.input === undefined) return `${label} is required`;
        if (issue.expected === 'int') return `${label} must be a whole number`;
        return `${label} must be ${/^[aeiou]/.test(issue.expected) ? 'an' : 'a'} ${issue.expected}`;
      case 'too_small':
        if (issue.origin === 'string') {
          return Number(issue.minimum) === 1
            ? `${label} must not be empty`
            : `${label} must be at least ${count(issue.minimum)} characters`;
        }
        return issue.inclusive
          ? `${label} must be at least ${count(issue.minimum)}`
          : `${label} must be more than ${count(issue.minimum)}`;
      case 'too_big':
        if (issue.origin === 'string') return `${label} must be at most ${count(issue.maximum)} characters`;
        return issue.inclusive
          ? `${label} must be at most ${count(issue.maximum)}`
          : `${label} must be less than ${count(issue.maximum)}`;
      case 'invalid_format':
        return issue.format === 'uuid' ? `${label} must be a UUID` : `${label} must be a valid ${issue.format}`;
      case 'invalid_value':
        return `${label} must be one of: ${issue.values.map(String).join(', ')}`;
      default:
        return `${label} is invalid`;
    }
  };
}
