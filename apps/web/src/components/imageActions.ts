import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTRPC, useTRPCClient } from '../app/trpc.js';
import { mapPageItems } from '../lib/pagination.js';
import { useToast } from './Toasts.js';

/** Star, delete and download, with the caches that show images kept in step. */
export function useImageActions() {
  const trpc = useTRPC();
  const client = useTRPCClient();
  const queryClient = useQueryClient();
  const toast = useToast();

  const refresh = () =>
    Promise.all([
      queryClient.invalidateQueries(trpc.gallery.pathFilter()),
      queryClient.invalidateQueries(trpc.boards.pathFilter()),
    ]);

  // Starring shows at once; a refusal puts the caches back by refetching them.
  const star = useMutation(
    trpc.gallery.star.mutationOptions({
      onMutate: async ({ imageId, starred }) => {
        await queryClient.cancelQueries(trpc.gallery.list.pathFilter());
        queryClient.setQueriesData(trpc.gallery.list.pathFilter(), (data: unknown) =>
          mapPageItems<{ id: string; starred: boolean }>(data, (item) =>
            item.id === imageId ? { ...item, starred } : item,
          ),
        );
        queryClient.setQueryData(trpc.gallery.get.queryKey({ imageId }), (image) =>
          image ? { ...image, starred } : image,
        );
      },
      onSettled: () => refresh(),
      onError: (error) => toast.error(error),
    }),
  );

  const remove = useMutation(
    trpc.gallery.deleteMany.mutationOptions({
      onSuccess: (result) => {
        toast.show(
          'success',
          result.deleted.length === 1 ? 'Image deleted' : `${result.deleted.length} images deleted`,
        );
        return refresh();
      },
      onError: (error) => toast.error(error),
    }),
  );

  async function download(imageId: string): Promise<void> {
    try {
      const { url } = await client.gallery.downloadUrl.query({ imageId });
      const link = document.createElement('a');
      link.href = url;
      link.rel = 'noopener';
      document.body.append(link);
      link.click();
      link.remove();
    } catch (error) {
      toast.error(error);
    }
  }

  return { star, remove, download };
}
