import { useQuery } from '@tanstack/react-query';
import { describeError } from '../lib/errors.js';
import { useTRPC, type RouterOutputs } from './trpc.js';

export type Me = RouterOutputs['user']['me'];

/** The signed-in user, or `signedOut` when the session is missing or ended. */
export function useMe() {
  const trpc = useTRPC();
  const query = useQuery({ ...trpc.user.me.queryOptions(), retry: false, staleTime: 15_000 });
  const signedOut = query.isError && describeError(query.error).kind === 'unauthorized';
  return { ...query, signedOut };
}
