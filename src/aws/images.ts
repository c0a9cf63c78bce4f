// Does an image exist in ECR? DescribeImages for one repository and tag or digest.
import type { Registry } from './registry.js';
import { awsError, type AwsSession } from './session.js';
import { ecrClientConfig } from './tokens.js';

export async function imageExists(session: AwsSession, registry: Registry, repository: string, ref: { tag?: string; digest?: string }): Promise<boolean> {
  const { ECRClient, DescribeImagesCommand } = await import('@aws-sdk/client-ecr');
  const client = new ECRClient(ecrClientConfig(registry, session));
  try {
    const imageId = ref.digest ? { imageDigest: ref.digest } : { imageTag: ref.tag ?? 'latest' };
    const out = await client.send(new DescribeImagesCommand({ registryId: registry.account, repositoryName: repository, imageIds: [imageId] }));
    return (out.imageDetails ?? []).length > 0;
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'RepositoryNotFoundException' || name === 'ImageNotFoundException') return false;
    throw awsError(`ecr:DescribeImages on ${repository}`, err);
  } finally {
    client.destroy();
  }
}
