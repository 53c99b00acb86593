import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { lazy, Suspense, useState } from 'react';
import { BrowserRouter, Route, Routes } from 'react-router';
import { ErrorBoundary, Spinner } from '../components/Feedback.js';
import { ToastProvider } from '../components/Toasts.js';
import { describeError } from '../lib/errors.js';
import { LandingPage } from '../pages/Landing.js';
import { NotFoundPage } from '../pages/NotFound.js';
import { useFocusOnRouteChange } from './pageTitle.js';
import { createClient, TRPCProvider } from './trpc.js';

// The landing page loads alone; the signed-in screens (and the shared schema they validate
// with) arrive in their own chunks.
const AppShell = lazy(() => import('../components/AppShell.js').then((m) => ({ default: m.AppShell })));
const StudioPage = lazy(() => import('../pages/Studio.js').then((m) => ({ default: m.StudioPage })));
const GalleryPage = lazy(() => import('../pages/Gallery.js').then((m) => ({ default: m.GalleryPage })));
const ImageDetailPage = lazy(() => import('../pages/ImageDetail.js').then((m) => ({ default: m.ImageDetailPage })));
const BoardsPage = lazy(() => import('../pages/Boards.js').then((m) => ({ default: m.BoardsPage })));
const BoardPage = lazy(() => import('../pages/Board.js').then((m) => ({ default: m.BoardPage })));
const BillingPage = lazy(() => import('../pages/Billing.js').then((m) => ({ default: m.BillingPage })));
const PublicBoardPage = lazy(() => import('../pages/PublicBoard.js').then((m) => ({ default: m.PublicBoardPage })));

function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 30_000,
        // Retrying a refusal (4xx) never helps; a dropped connection may.
        retry: (count, error) => count < 2 && ['network', 'server', 'unavailable'].includes(describeError(error).kind),
      },
    },
  });
}

function RouteFocus() {
  useFocusOnRouteChange();
  return null;
}

function Loading() {
  return (
    <div className="page-center">
      <Spinner />
    </div>
  );
}

export function App() {
  const [queryClient] = useState(makeQueryClient);
  // Every query's answer belonged to the ended session: refetching them all shows the sign-in
  // screen (user.me is refused) instead of a studio that no longer works.
  const [trpcClient] = useState(() => createClient({ onSessionEnded: () => void queryClient.invalidateQueries() }));
  return (
    <ErrorBoundary>
      <QueryClientProvider client={queryClient}>
        <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
          <ToastProvider>
            <BrowserRouter>
              <RouteFocus />
              <Suspense fallback={<Loading />}>
                <Routes>
                  <Route path="/" element={<LandingPage />} />
                  <Route path="/b/:slug" element={<PublicBoardPage />} />
                  <Route element={<AppShell />}>
                    <Route path="/studio" element={<StudioPage />} />
                    <Route path="/gallery" element={<GalleryPage />} />
                    <Route path="/gallery/:imageId" element={<ImageDetailPage />} />
                    <Route path="/boards" element={<BoardsPage />} />
                    <Route path="/boards/:boardId" element={<BoardPage />} />
                    <Route path="/billing" element={<BillingPage />} />
                  </Route>
                  <Route path="*" element={<NotFoundPage />} />
                </Routes>
              </Suspense>
            </BrowserRouter>
          </ToastProvider>
        </TRPCProvider>
      </QueryClientProvider>
    </ErrorBoundary>
  );
}
